"""A user's own data and networks through the one protocol: tensors, torch Datasets, lists of PyG graphs and user
graphs in; registered encoders, experts, evaluation nets and teachers; evaluation on the user's own test data; and
artifacts out (Student.to_module, TreeSet.to_data_list)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

import condense
from condense.graph import teachers
from condense.vision import nets
from condense.vision.data import load_images

TINY_G2M = dict(num_layers=2, hidden=8, max_epochs=6, patience=6, split_train_per_class=4, split_val=10,
                split_test=10)


class TinyEncoder(nets.Net):
    """A user's encoder: two conv stages; its features are what DataDAM matches."""

    def __init__(self, channels, num_classes, image_size):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.classifier = nn.Linear(8 * (image_size[0] // 2) * (image_size[1] // 2), num_classes)

    def features(self, x):
        a1 = torch.relu(self.conv1(x))
        a2 = torch.relu(self.conv2(a1))
        return nets.Features((a1, a2), F.avg_pool2d(a2, 2).flatten(1))


class PlainMLP(nn.Module):
    """Any module mapping images to logits (an evaluation net or an MTT expert)."""

    def __init__(self, channels, num_classes, image_size):
        super().__init__()
        self.fc = nn.Linear(channels * image_size[0] * image_size[1], num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.fixture
def registered():
    nets.register("tiny-encoder", TinyEncoder)
    nets.register("plain-mlp", PlainMLP)
    yield
    nets.register.unregister("tiny-encoder")
    nets.register.unregister("plain-mlp")


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", train_per_class=10)


def test_datadam_on_a_tensor_dataset_with_a_registered_encoder(registered, digits):
    data = TensorDataset(digits.x_train, digits.y_train)
    art = condense.distill("datadam", data, encoder="tiny-encoder", ipc=2, iterations=3, dsa=False, device="cpu")
    assert art.images.shape == (20, 1, 8, 8) and art.meta["extra"]["summary"]["encoder"] == "tiny-encoder"
    assert art.meta["extra"]["preprocessing"] == {"space": "given"} and "mean" not in art
    torch.testing.assert_close(art.to_pixels(), art.images)  # the set lives in the space of the given tensors
    # it cannot be evaluated without test data, and it can with the user's own test split and network
    with pytest.raises(ValueError, match="your own data"):
        condense.evaluate(art)
    res = condense.evaluate(art, (digits.x_test, digits.y_test), model="plain-mlp", runs=1, epochs=2, device="cpu")
    assert res["model"] == "plain-mlp" and 0 <= res["results"]["distilled"]["accuracy"]["mean"] <= 1
    with pytest.raises(ValueError, match="baselines need the real training split"):
        condense.evaluate(art, (digits.x_test, digits.y_test), baselines=True, runs=1, epochs=0, device="cpu")
    both = condense.evaluate(art, ((digits.x_train, digits.y_train), (digits.x_test, digits.y_test)), runs=1,
                             epochs=0, full_epochs=0, baselines=True, baseline_sets="random,full", device="cpu")
    assert set(both["results"]) == {"distilled", "random", "full"} and both["compression"]["full_samples"] == 100


def test_an_encoder_without_features_is_refused(registered, digits):
    with pytest.raises(TypeError, match="encoder 'plain-mlp' must return its features"):
        condense.distill("datadam", (digits.x_train, digits.y_train), encoder="plain-mlp", ipc=1, iterations=1,
                         device="cpu")


def test_registered_names_are_checked():
    with pytest.raises(ValueError, match="built-in image network"):
        nets.register("convnet-mine", PlainMLP)
    with pytest.raises(ValueError, match="lower-case"):
        nets.register("Mine", PlainMLP)
    nets.register("dup", PlainMLP)
    try:
        with pytest.raises(ValueError, match="already registered"):
            nets.register("dup", PlainMLP)
    finally:
        nets.register.unregister("dup")


def test_a_registered_network_builds_seeded_and_named():
    nets.register("plain-mlp-2", PlainMLP)
    try:
        a = nets.build_net("plain-mlp-2", 1, 3, 4, generator=torch.Generator().manual_seed(1))
        b = nets.build_net("plain-mlp-2", 1, 3, 4, generator=torch.Generator().manual_seed(1))
        c = nets.build_net("plain-mlp-2", 1, 3, 4, generator=torch.Generator().manual_seed(2))
        assert torch.equal(a.fc.weight, b.fc.weight) and not torch.equal(a.fc.weight, c.fc.weight)
        assert nets.net_name(a) == "plain-mlp-2"
    finally:
        nets.register.unregister("plain-mlp-2")


def test_mtt_with_a_registered_expert_on_tensors(registered, digits, tmp_path):
    art = condense.distill("mtt", (digits.x_train, digits.y_train), model="plain-mlp", ipc=1, iterations=2,
                           syn_steps=2, expert_epochs=1, max_start_epoch=1, device="cpu", out=tmp_path,
                           **{"expert.experts": 1, "expert.epochs": 2, "expert.batch": 32})
    assert art.meta["extra"]["summary"]["model"] == "plain-mlp" and art.learned_lr is not None
    assert (tmp_path / "buffer" / "buffer.json").is_file()


def _graphs(n_per_class: int = 12, seed: int = 0):
    """Class 0: paths, class 1: cycles (same node labels): a structural task a 1-hop tree set can learn."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    out = []
    for c in (0, 1):
        for _ in range(n_per_class):
            n = int(torch.randint(4, 8, (1,), generator=g))
            src = torch.arange(n - 1)
            edges = torch.stack([src, src + 1])
            if c == 1:
                edges = torch.cat([edges, torch.tensor([[n - 1], [0]])], 1)
            edges = torch.cat([edges, edges.flip(0)], 1)
            out.append(Data(x=torch.ones(n, 1), edge_index=edges, y=torch.tensor([c])))
    return out


def test_mirage_on_a_list_of_pyg_graphs():
    train, val, test = _graphs(12, 0), _graphs(4, 1), _graphs(4, 2)
    art = condense.distill("mirage", train, depth=1, support=0.5, device="cpu")
    assert art.meta["source"]["name"] == "graphs" and art.meta["budget"]["itemsets"] >= 2
    with pytest.raises(ValueError, match="your own graphs"):
        condense.evaluate(art)
    res = condense.evaluate(art, (train, val, test), runs=1, epochs=2, hidden=8, device="cpu")
    assert res["kind"] == "TreeSet" and len(res["results"]["distilled"]["accuracy"]["runs"]) == 1
    with pytest.raises(ValueError, match="threshold_grid scores each point on a validation split"):
        condense.distill("mirage", train, depth=1, threshold_grid="[[2], [3]]")


def test_tree_set_as_pyg_data_reproduces_the_library_training_loss():
    from torch_geometric.data import Batch
    from torch_geometric.nn import GINConv

    from condense.graph.mirage import training_graphs
    from condense.graph.nets import GNNConfig, GraphClassifier, root_readout

    art = condense.distill("mirage", _graphs(), depth=1, support=0.5, device="cpu")
    data_list = art.to_data_list()
    pack = training_graphs(art)
    assert len(data_list) == pack.num_graphs and all(int(d.root_mask.sum()) >= 1 for d in data_list)
    assert [float(d.weight) for d in data_list] == pack.weight.tolist()
    torch.manual_seed(0)
    library = GraphClassifier(pack.x.shape[1], 2, GNNConfig(model="gin", layers=1, hidden=8, dropout=0.0)).eval()

    class UserGIN(nn.Module):  # a plain PyG model: GIN layer, the root readout, a linear head
        def __init__(self):
            super().__init__()
            self.conv = GINConv(nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 8)))
            self.head = nn.Linear(8, 2)

        def forward(self, batch):
            h = torch.relu(self.conv(batch.x, batch.edge_index))
            return self.head(root_readout(h, batch.batch, batch.root_mask, num_graphs=batch.num_graphs))

    user = UserGIN().eval()
    user.conv.nn.load_state_dict(library.convs[0].nn.state_dict())  # the same weights as the library's model
    user.head.load_state_dict(library.head[1].state_dict())
    batch = Batch.from_data_list(data_list)
    ours = F.cross_entropy(library(pack), pack.y)
    theirs = F.cross_entropy(user(batch), batch.y)
    torch.testing.assert_close(theirs, ours)


class MeanTeacher(nn.Module):
    """A user's teacher GNN: one mean-aggregation layer."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.lin = nn.Linear(2 * in_dim, out_dim)

    def forward(self, x, edge_index):
        from torch_geometric.utils import scatter

        agg = scatter(x[edge_index[0]], edge_index[1], dim=0, dim_size=x.shape[0], reduce="mean")
        return self.lin(torch.cat([x, agg], 1))


def test_ffg2m_with_a_user_teacher_module_and_a_registered_teacher():
    from condense.graph.data import load_karate

    graph = load_karate()
    art = condense.distill("ffg2m", graph, teacher=MeanTeacher(34, 2), device="cpu", **TINY_G2M)
    assert art.meta["extra"]["teacher"]["arch"] == "MeanTeacher" and art.meta["source"]["name"] == "graph"
    teachers.register("mean-teacher", lambda in_dim, out_dim, config: MeanTeacher(in_dim, out_dim))
    try:
        named = condense.distill("ffg2m", graph, teacher="mean-teacher", device="cpu", **TINY_G2M)
        assert named.meta["config"]["teacher"] == "mean-teacher"
        res = condense.evaluate(named, graph, device="cpu")
        assert res["results"]["distilled"]["accuracy"]["mean"] == pytest.approx(
            named.meta["extra"]["student"]["test_acc"])
    finally:
        teachers.register.unregister("mean-teacher")


@pytest.mark.parametrize("feature_norm", ["row", "none"])
def test_student_module_equals_predict(feature_norm):
    from condense.graph.data import load_karate

    graph = load_karate()
    art = condense.distill("ffg2m", graph, feature_norm=feature_norm, device="cpu", **TINY_G2M)
    module = art.to_module().eval()
    x = graph.x * torch.rand(graph.x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(module(x), art.logits(x))
    assert torch.equal(module(x).argmax(1), art.predict(x))
    assert isinstance(module, nn.Sequential) and (type(module[0]).__name__ == "RowNormalise") == (feature_norm == "row")


def test_one_installed_namespace(tmp_path):
    """``vision``, ``graph`` and ``bench`` are not top-level modules; the folders refuse to load under those names."""
    code = "import importlib.util as u; print([u.find_spec(m) is None for m in ('vision', 'graph', 'bench')])"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[True, True, True]"
    ok = subprocess.run([sys.executable, "-c", "import condense.vision, condense.graph, condense.bench"],
                        cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    from pathlib import Path

    import condense.vision as vision_pkg

    root = Path(vision_pkg.__file__).resolve().parents[1]  # the source checkout of an editable install
    wrong = subprocess.run([sys.executable, "-c", "import vision"], cwd=root, capture_output=True, text=True)
    assert wrong.returncode != 0 and "import condense.vision" in wrong.stderr
