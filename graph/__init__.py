"""Graph distillation on PyTorch Geometric: datasets (DGL accepted), GNNs, computation trees, frequent-itemset
mining, Mirage and FF-G2M."""

if __name__ != "condense.graph":  # this folder is only ever the package condense.graph
    raise ImportError(f"the graph/ folder of condense installs as condense.graph; import condense.graph, "
                      f"not {__name__}")
