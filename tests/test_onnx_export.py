"""ONNX export: every layer, checked by onnx.checker and strict shape inference, run in ONNX
Runtime and in onnx's own reference evaluator (two independent oracles) at batch 1 and 7,
against convlens's forward; the Triton repository; ``convlens export``."""

from __future__ import annotations

import argparse
import json
import zlib
from collections import OrderedDict

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx.reference import ReferenceEvaluator  # noqa: E402

import convlens as cl  # noqa: E402
from convlens import nn  # noqa: E402
from convlens.onnx import ExportError, triton  # noqa: E402

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _randomise_batch_norms(model: nn.Module, rng: np.random.Generator) -> None:
    """Running statistics and affine weights away from their 0/1 start, so BN does something."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
            n = module.num_features
            module.running_mean.data[...] = rng.normal(0, 0.5, n)
            module.running_var.data[...] = rng.uniform(0.5, 2.0, n)
            if module.affine:
                module.weight.data[...] = rng.uniform(0.5, 1.5, n)
                module.bias.data[...] = rng.normal(0, 0.5, n)


def mixed_2d() -> nn.Module:
    """BatchNorm, Dropout, every padding mode, groups and dilation, both poolings with
    ceil_mode/count_include_pad, a transposed convolution, adaptive pooling, LogSoftmax."""
    model = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"),
            bn1=nn.BatchNorm2d(8),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(8, 8, 3, padding=(1, 2), padding_mode="replicate", groups=2),
            conv3=nn.Conv2d(8, 8, 4, padding="same", padding_mode="circular", dilation=2),
            sigmoid=nn.Sigmoid(),
            avg=nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
            conv4=nn.Conv2d(8, 6, (2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
            pool=nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
            up=nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, dilation=2),
            tanh=nn.Tanh(),
            adaptive=nn.AdaptiveAvgPool2d((6, 4)),
            bn2=nn.BatchNorm2d(4, affine=False),
            adaptive_max=nn.AdaptiveMaxPool2d((1, None)),
            flatten=nn.Flatten(),
            drop=nn.Dropout(0.3),
            fc=nn.Linear(16, 5),
            out=nn.LogSoftmax(dim=1),
        )
    )
    model.input_shape = (3, 15, 17)
    return model


def mixed_1d() -> nn.Module:
    model = nn.Sequential(
        nn.Conv1d(2, 4, 3, stride=2, padding=2, dilation=2, padding_mode="reflect"),
        nn.BatchNorm1d(4),
        nn.MaxPool1d(2, ceil_mode=True),
        nn.Conv1d(4, 4, 2, padding="same", padding_mode="circular", groups=4),
        nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=True),
        nn.Conv1d(4, 3, 3, padding=1, padding_mode="replicate", bias=False),
        nn.Flatten(),
        nn.Linear(18, 6),
        nn.BatchNorm1d(6),
        nn.Softmax(dim=1),
    )
    model.input_shape = (2, 23)
    return model


def mixed_3d() -> nn.Module:
    model = nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1, padding_mode="replicate"),
        nn.BatchNorm3d(4),
        nn.ReLU(),
        nn.MaxPool3d(2, stride=(1, 2, 2), dilation=(1, 1, 1)),
        nn.Conv3d(4, 4, (1, 3, 3), padding=(0, 1, 1), padding_mode="circular", groups=2),
        nn.Conv3d(4, 4, 2, padding=1, padding_mode="reflect", dilation=(2, 1, 1)),
        nn.AvgPool3d(2, ceil_mode=True, padding=1, count_include_pad=True),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3 * 3, 3),
    )
    model.input_shape = (1, 5, 6, 7)
    return model


def reshaping() -> nn.Module:
    """Flatten of inner axes (Reshape, not Flatten), Linear over a 3-D input (MatMul),
    the legacy Softmax dim and the scaled tanh."""
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.Flatten(start_dim=2),  # (N, 3, 36)
        nn.Linear(36, 5),  # (N, 3, 5)
        nn.ScaledTanh(),
        nn.Linear(5, 4, bias=False),
        nn.Softmax(),  # dim=None on a 3-D input: PyTorch's legacy axis 0
        nn.Flatten(),
        nn.Identity(),
    )
    model.input_shape = (1, 8, 8)
    return model


MODELS = {
    "lenet5": lambda: cl.models.get("lenet5"),
    "lenet5_classic": lambda: cl.models.get("lenet5-classic"),
    "lecture_cnn": lambda: cl.models.get("lecture_cnn"),
    "lecture_mlp": lambda: cl.models.get("lecture_mlp"),
    "mixed_2d": mixed_2d,
    "mixed_1d": mixed_1d,
    "mixed_3d": mixed_3d,
    "reshaping": reshaping,
}


def _build(name: str) -> nn.Module:
    cl.manual_seed(zlib.crc32(name.encode()) % 1000)
    model = MODELS[name]()
    _randomise_batch_norms(model, _rng(name))
    return model.eval()


def _convlens(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with cl.no_grad():
        return model(cl.tensor(x)).data


def _assert_checked(proto) -> None:
    onnx.checker.check_model(proto, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    onnx.checker.check_model(inferred)


def _out_dims(proto) -> list:
    return [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", list(MODELS))
def test_exported_model_matches_convlens_in_onnxruntime_and_the_reference(name, tmp_path):
    model = _build(name)
    path = tmp_path / f"{name}.onnx"
    proto = cl.onnx.export(model, path, model.input_shape, opset=19)
    _assert_checked(onnx.load(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = ReferenceEvaluator(proto)
    for batch in (1, 7):
        x = _rng(f"{name}{batch}").standard_normal((batch, *model.input_shape)).astype(np.float32)
        expected = _convlens(model, x)
        from_ort = session.run(None, {"input": x})[0]
        from_reference = reference.run(None, {"input": x})[0]
        assert from_ort.shape == from_reference.shape == expected.shape
        np.testing.assert_allclose(from_ort, expected, **TOLERANCE)
        np.testing.assert_allclose(from_reference, expected, **TOLERANCE)
    assert _out_dims(proto) == ["N", *model.output_shape(model.input_shape)]


def test_graph_names_versions_and_metadata():
    model = _build("lenet5_classic")
    proto = cl.onnx.export(
        model, None, normalization={"mean": -0.1, "std": 1.0, "pad": 2}, classes="0123456789"
    )
    assert proto.producer_name == "convlens" and proto.producer_version == cl.__version__
    assert proto.ir_version == onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", 19)]) == 9
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 19)]
    names = [i.name for i in proto.graph.initializer]
    state = model.state_dict()
    assert set(names) <= set(state) and {n for n, _ in model.named_parameters()} <= set(names)
    for initializer in proto.graph.initializer:  # the very weights, in their stored layout
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(initializer), state[initializer.name])
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 1, 32, 32]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["input_layout"] == "NCHW" and props["input_shape"] == "1x32x32"
    assert props["producer"] == f"convlens {cl.__version__}"
    assert json.loads(props["normalization"]) == {"mean": -0.1, "std": 1.0, "pad": 2}
    assert json.loads(props["classes"]) == list("0123456789")
    assert json.loads(props["architecture"]) == json.loads(json.dumps(model.get_config()))
    ops = {node.op_type for node in proto.graph.node}
    assert {"ScatterND", "ReduceSum", "Neg", "AveragePool", "Tanh"} <= ops  # C3, RBF, scores, S2/S4


@pytest.mark.parametrize(("c_in", "c_out"), [(6, 4), (4, 4)])
def test_grouped_transposed_convolution(c_in, c_out):
    """Against ONNX Runtime only: onnx's reference ConvTranspose fails on a grouped weight (it
    slices the (C_in, C_out/groups, ...) weight by output channels, and passes every group the
    whole bias)."""
    cl.manual_seed(c_in)
    layer = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, groups=2)
    proto = cl.onnx.export(layer, None, (c_in, 5, 4))
    _assert_checked(proto)
    x = _rng("grouped").standard_normal((3, c_in, 5, 4)).astype(np.float32)
    got = ort.InferenceSession(proto.SerializeToString()).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, _convlens(layer, x), **TOLERANCE)


def test_pooling_attributes_are_always_written():
    proto = cl.onnx.export(nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(2)), None, (1, 4, 4))
    pool, avg = proto.graph.node
    assert {a.name for a in pool.attribute} >= {"kernel_shape", "strides", "pads", "dilations", "ceil_mode"}
    assert {a.name for a in avg.attribute} >= {
        "kernel_shape",
        "strides",
        "pads",
        "ceil_mode",
        "count_include_pad",
    }
    assert (
        onnx.helper.get_attribute_value(next(a for a in avg.attribute if a.name == "count_include_pad")) == 1
    )


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, "same"])
def test_every_padding_mode(dims, mode, padding):
    cl.manual_seed(dims)
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1](
        2, 3, 2 if padding == "same" else 3, padding=padding, padding_mode=mode
    )
    shape = (2, *(5, 6, 4)[:dims])
    proto = cl.onnx.export(conv, None, shape)
    _assert_checked(proto)
    assert ("Pad" in {n.op_type for n in proto.graph.node}) == (mode != "zeros")
    x = _rng(f"{dims}{mode}{padding}").standard_normal((3, *shape)).astype(np.float32)
    got = ort.InferenceSession(proto.SerializeToString()).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, _convlens(conv, x), **TOLERANCE)
    np.testing.assert_allclose(ReferenceEvaluator(proto).run(None, {"input": x})[0], got, **TOLERANCE)


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_other_opsets(opset):
    model = _build("lenet5_classic")
    proto = cl.onnx.export(model, None, opset=opset)
    _assert_checked(proto)
    x = _rng("opset").standard_normal((2, 1, 32, 32)).astype(np.float32)
    got = ort.InferenceSession(proto.SerializeToString()).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, _convlens(model, x), **TOLERANCE)


class Doubler(nn.Module):
    def forward(self, x):
        return cl.as_tensor(x) * 2

    def output_shape(self, input_shape):
        return tuple(input_shape)


class Shifted(nn.Sequential):
    def forward(self, x):
        return super().forward(x) + 1


@pytest.mark.parametrize(
    ("model", "shape", "opset", "words"),
    [
        (nn.Sequential(OrderedDict(fc=nn.Linear(4, 4), double=Doubler())), (4,), 19, ["'double'", "Doubler"]),
        (nn.Sequential(Shifted(nn.ReLU())), (4,), 19, ["'0'", "Shifted"]),
        (
            nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(4)),
            (1, 11, 11),
            19,
            ["'1'", "AdaptiveAvgPool2d", "(9, 9)", "(4, 4)"],
        ),
        (
            nn.Sequential(nn.BatchNorm2d(1, track_running_stats=False)),
            (1, 4, 4),
            19,
            ["'0'", "BatchNorm2d", "running"],
        ),
        (
            nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")),
            (1, 4, 4),
            18,
            ["'0'", "circular", "opset 19"],
        ),
    ],
)
def test_unexportable_layers_are_named(model, shape, opset, words):
    with pytest.raises(ExportError) as error:
        cl.onnx.export(model, None, shape, opset=opset)
    for word in words:
        assert word in str(error.value)


def test_bad_arguments():
    model = cl.models.get("lenet5")
    with pytest.raises(ValueError, match="opset"):
        cl.onnx.export(model, None, opset=12)
    with pytest.raises(ValueError, match="input_shape"):
        cl.onnx.export(nn.Linear(2, 2), None)
    with pytest.raises(ValueError, match="input_shape"):
        cl.onnx.export(model, None, (1, 0, 28))
    with pytest.raises(ValueError, match="float32"):
        cl.onnx.export(nn.Linear(2, 2).double(), None, (2,))


def test_identity_only_model_still_has_an_output():
    proto = cl.onnx.export(nn.Sequential(nn.Dropout(0.5)), None, (3,))
    _assert_checked(proto)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(ReferenceEvaluator(proto).run(None, {"input": x})[0], x)


# ----------------------------------------------------------------------------------------- Triton
def _triton_repository(tmp_path):
    model = _build("lenet5")
    folder = triton.write_repository(model, tmp_path / "models", max_batch_size=16)
    return model, folder


def test_triton_repository_layout_config_and_model(tmp_path):
    model, folder = _triton_repository(tmp_path)
    assert folder == tmp_path / "models" / "lenet5"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "1/model.onnx",
        "config.pbtxt",
    ]
    config = triton.read_config(folder / "config.pbtxt")
    assert config["name"] == ["lenet5"] and config["platform"] == ["onnxruntime_onnx"]
    assert config["max_batch_size"] == [16]
    assert config["input"] == [{"name": ["input"], "data_type": ["TYPE_FP32"], "dims": [1, 28, 28]}]
    assert config["output"] == [{"name": ["output"], "data_type": ["TYPE_FP32"], "dims": [10]}]
    session = ort.InferenceSession(str(folder / "1" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["input"]
    x = _rng("triton").standard_normal((16, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"input": x})[0], _convlens(model, x), **TOLERANCE)


def test_triton_config_parses_as_triton_model_config(tmp_path):
    """With Triton's own protobuf (tritonclient), the text parses as its ModelConfig message."""
    model_config = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    from google.protobuf import text_format

    _, folder = _triton_repository(tmp_path)
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config.ModelConfig())
    assert (config.name, config.platform, config.max_batch_size) == ("lenet5", "onnxruntime_onnx", 16)
    assert [(t.name, list(t.dims), t.data_type) for t in config.input] == [
        ("input", [1, 28, 28], model_config.TYPE_FP32)
    ]
    assert [(t.name, list(t.dims)) for t in config.output] == [("output", [10])]


def test_triton_bad_name(tmp_path):
    with pytest.raises(ValueError, match="name"):
        triton.write_repository(cl.models.get("lenet5"), tmp_path, name="bad name")


def test_read_config_rejects_unbalanced_text(tmp_path):
    path = tmp_path / "config.pbtxt"
    path.write_text('name: "m"\ninput [ { name: "x" ')
    with pytest.raises((ValueError, IndexError)):
        triton.read_config(path)


# ----------------------------------------------------------------------- convlens export, predict
def _export_args(argv):
    from convlens.cli import export as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli, parser.parse_args(argv)


def _checkpoint(tmp_path):
    model = _build("lenet5")
    config = {
        "mean": 0.1307,
        "std": 0.3081,
        "pad": 0,
        "classes": list("0123456789"),
        "input_shape": [1, 28, 28],
    }
    cl.save(model, tmp_path / "ckpt" / "model", config=config)
    return model, tmp_path / "ckpt" / "model"


def test_export_command_writes_onnx_and_triton(tmp_path, capsys):
    model, checkpoint = _checkpoint(tmp_path)
    out, repository = tmp_path / "out.onnx", tmp_path / "repo"
    cli, args = _export_args([str(checkpoint), "--onnx", str(out), "--triton", str(repository)])
    assert cli.run(args) == 0
    assert "wrote" in capsys.readouterr().out
    props = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert json.loads(props["normalization"]) == {"mean": 0.1307, "std": 0.3081, "pad": 0}
    assert (repository / "lenet5" / "1" / "model.onnx").exists()
    x = _rng("cli").standard_normal((4, 1, 28, 28)).astype(np.float32)
    got = cl.onnx.runtime.run(out, x)
    np.testing.assert_allclose(got, _convlens(model, x), **TOLERANCE)


def test_export_command_needs_a_destination(tmp_path):
    from convlens.cli._common import CLIError

    _, checkpoint = _checkpoint(tmp_path)
    cli, args = _export_args([str(checkpoint)])
    with pytest.raises(CLIError, match="--onnx"):
        cli.run(args)


def test_onnxruntime_predicts_pictures_as_convlens(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image, ImageDraw

    from convlens.images import model_input

    model, checkpoint = _checkpoint(tmp_path)
    files = []
    for i, box in enumerate([(8, 4, 20, 24), (4, 10, 24, 14)]):
        image = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(image).ellipse(box, outline=255, width=3)
        files.append(tmp_path / f"digit{i}.png")
        image.save(files[-1])
    out = tmp_path / "lenet5.onnx"
    cli, args = _export_args([str(checkpoint), "--onnx", str(out)])
    cli.run(args)
    guesses = cl.onnx.runtime.predict_images(out, files, top=3)
    batch = model_input(files, (1, 28, 28), 0.1307, 0.3081, 0)
    probabilities = cl.functional.softmax(_convlens(model, batch), dim=1).data
    for (best, p), row in zip([g[0] for g in guesses], probabilities, strict=True):
        assert best == int(row.argmax()) and p == pytest.approx(float(row.max()), abs=1e-6)
    assert cli.run_onnx(str(out), [str(f) for f in files]) == 0
    assert capsys.readouterr().out.count("%") == len(files)


@pytest.mark.parametrize(
    "layer",
    [
        nn.MaxPool1d(2, stride=2, padding=1, ceil_mode=True),  # the last window would start on padding
        nn.AvgPool1d(2, stride=2, padding=1, ceil_mode=True),
        nn.AvgPool1d(2, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),  # the overhang is not counted
        nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
        nn.AvgPool3d((3, 2, 2), stride=(2, 2, 1), padding=(1, 0, 1), ceil_mode=True),
    ],
    ids=lambda layer: repr(layer),
)
def test_ceil_mode_edges(layer):
    shape = {nn.MaxPool1d: (2, 5), nn.AvgPool1d: (2, 5), nn.AvgPool3d: (2, 6, 5, 4)}.get(
        type(layer), (2, 6, 7)
    )
    proto = cl.onnx.export(layer, None, shape)
    _assert_checked(proto)
    x = _rng(repr(layer)).standard_normal((3, *shape)).astype(np.float32)
    expected = _convlens(layer, x)
    np.testing.assert_allclose(
        ort.InferenceSession(proto.SerializeToString()).run(None, {"input": x})[0], expected, **TOLERANCE
    )
    np.testing.assert_allclose(ReferenceEvaluator(proto).run(None, {"input": x})[0], expected, **TOLERANCE)


def test_ceil_mode_with_axes_that_disagree():
    """Height keeps PyTorch's ceil window, width drops one that would start on padding."""
    for layer in (
        nn.MaxPool2d((3, 2), stride=2, padding=1, ceil_mode=True),
        nn.AvgPool2d((3, 2), stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    ):
        proto = cl.onnx.export(layer, None, (1, 6, 5))
        _assert_checked(proto)
        x = _rng("disagree").standard_normal((2, 1, 6, 5)).astype(np.float32)
        expected = _convlens(layer, x)
        assert expected.shape == (2, 1, 4, 3)
        got = ort.InferenceSession(proto.SerializeToString()).run(None, {"input": x})[0]
        np.testing.assert_allclose(got, expected, **TOLERANCE)
        np.testing.assert_allclose(
            ReferenceEvaluator(proto).run(None, {"input": x})[0], expected, **TOLERANCE
        )
    with pytest.raises(ExportError, match="count_include_pad"):
        cl.onnx.export(nn.AvgPool2d((3, 2), stride=2, padding=1, ceil_mode=True), None, (1, 6, 5))
