"""Benchmarks behind `idproof bench ...`: figures measured on real data, printed as a table or JSON."""
