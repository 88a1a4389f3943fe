"""The robustness suite: invariant, properties, hostile inputs, faults and fuzz regressions."""
