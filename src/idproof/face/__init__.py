"""Face stage: detect → align → quality gate → embed → compare 1:1."""
