"""Analysis of campaign results: design-aware estimates with intervals, data-quality checks, reports, planning."""
