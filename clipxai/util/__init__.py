"""What everything needs: atomic files, paths kept inside a run, Ctrl-C, seeding, plain words."""
