"""Documents built from analysed runs: the report, its findings and definitions, and comparisons."""
