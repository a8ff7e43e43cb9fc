"""Graph distillation on PyTorch Geometric: datasets (DGL accepted), GNNs, computation trees, frequent-itemset
mining, Mirage and FF-G2M."""
