"""Drawing only: every figure, chart, sheet and video of an analysed run, from numbers computed elsewhere."""
