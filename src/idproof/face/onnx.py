"""One place that creates ONNX Runtime sessions, so threading is set the same way everywhere."""

from __future__ import annotations

import os

import onnxruntime as ort


def session(model: str | bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    # Small models on a few cores: intra-op threads = cores, no inter-op pool, no spinning between calls
    # (spinning threads steal the CPU from dlib and OpenCV work running in between).
    opts.intra_op_num_threads = int(os.environ.get("IDPROOF_THREADS", os.cpu_count() or 1))
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
