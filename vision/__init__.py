"""Image dataset distillation: datasets, the ConvNet family, DSA/ZCA, coresets, DataDAM, trajectory matching
and the evaluation protocol."""
