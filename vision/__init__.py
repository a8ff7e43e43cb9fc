"""Image dataset distillation: datasets, the ConvNet family, DSA/ZCA, coresets, DataDAM, trajectory matching
and the evaluation protocol."""

if __name__ != "condense.vision":  # this folder is only ever the package condense.vision
    raise ImportError(f"the vision/ folder of condense installs as condense.vision; import condense.vision, "
                      f"not {__name__}")
