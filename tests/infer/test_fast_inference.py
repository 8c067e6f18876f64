"""The fast feature-inference path (decode-ahead, channels_last, batched writes, chunked
sequence inference) against the float32 reference: same numbers, same frames, bounded memory."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from deg_core.errors import DegError
from deg_core.infer.features import (
    DATASETS,
    REFERENCE,
    FeaturePredictor,
    InferenceOptions,
    decode_ahead,
    video_features,
    write_video_outputs,
)
from deg_core.infer.sequence import sequence_logits
from deg_core.models.feature import HiddenTwoStream
from deg_core.models.flow import build_flow_generator
from deg_core.models.sequence import build_sequence_model

N_RGB, K, SIZE = 5, 2, 64


def tiny_feature_model(arch: str = "resnet18", flow: str = "TinyMotionNet") -> FeaturePredictor:
    torch.manual_seed(0)
    model = HiddenTwoStream.build(arch, build_flow_generator(flow, num_frames=N_RGB), K, N_RGB)
    return FeaturePredictor(
        model=model.eval(),
        run=Path("run_x"),
        n_rgb=N_RGB,
        size=(SIZE, SIZE),
        mean=torch.tensor([0.3, 0.4, 0.5]).view(1, 3, 1, 1),
        std=torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1),
        thresholds=np.full(K, 0.5, np.float32),
        behaviors=["a", "b"],
    )


def collect(fm, video, n, batch, opts) -> dict[str, np.ndarray]:
    starts, parts = [], []
    for start, arrays in video_features(fm, video, n, batch, opts):
        starts.append(start)
        parts.append(arrays)
    assert starts == list(range(0, n, batch))  # every frame once, in order
    return {k: np.concatenate([p[k] for p in parts]) for k in DATASETS}


def test_fast_path_matches_float32_reference(make_video):
    video = make_video(n=21, h=SIZE, w=SIZE)
    fm = tiny_feature_model()
    ref = collect(fm, video, 21, 4, REFERENCE)
    fast = collect(fm, video, 21, 4, InferenceOptions(prefetch=2, channels_last=True))
    for name in DATASETS:
        assert fast[name].shape == ref[name].shape and fast[name].dtype == np.float32
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-4, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(ref["P"], 1 / (1 + np.exp(-ref["logits"])), rtol=1e-5)
    # the reference call restores the contiguous layout the fast call changed
    again = collect(fm, video, 21, 4, REFERENCE)
    np.testing.assert_array_equal(again["logits"], ref["logits"])


def test_cpu_autocast_stays_within_mixed_precision_tolerance(make_video):
    video = make_video(n=9, h=SIZE, w=SIZE)
    fm = tiny_feature_model()
    ref = collect(fm, video, 9, 3, REFERENCE)
    amp = collect(fm, video, 9, 3, InferenceOptions(autocast=True))
    assert fm.autocast_dtype(InferenceOptions()) is None  # off unless compute.fp16 or asked
    assert fm.autocast_dtype(InferenceOptions(autocast=True)) == torch.bfloat16
    np.testing.assert_allclose(amp["spatial_features"], ref["spatial_features"], atol=0.1, rtol=0.1)
    assert np.corrcoef(amp["logits"].ravel(), ref["logits"].ravel())[0, 1] > 0.99


def test_batched_writes_give_the_same_file(make_video, tmp_path):
    video = make_video(n=23, h=SIZE, w=SIZE)
    fm = tiny_feature_model()
    out = {}
    for label, opts in [("ref", REFERENCE), ("fast", InferenceOptions(write_frames=8))]:
        path = tmp_path / f"{label}.h5"
        write_video_outputs(fm, "v", video, 23, path, batch=3, opts=opts)
        with h5py.File(path, "r") as f:
            out[label] = {k: f["run_x"][k][:] for k in DATASETS}
    for name in DATASETS:
        assert out["fast"][name].shape[0] == 23
        np.testing.assert_allclose(out["fast"][name], out["ref"][name], rtol=1e-4, atol=1e-4)


def test_decode_ahead_keeps_order_raises_errors_and_stops_early():
    assert list(decode_ahead(iter(range(50)), depth=2)) == list(range(50))

    def broken():
        yield 1
        raise DegError("bad frame")

    with pytest.raises(DegError, match="bad frame"):
        list(decode_ahead(broken(), depth=1))

    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    gen = decode_ahead(endless(), depth=3)
    assert [next(gen) for _ in range(5)] == [0, 1, 2, 3, 4]
    gen.close()  # the thread stops and the source is closed (the decoder released)
    assert closed == [True]


def test_sequence_inference_of_a_long_video_holds_one_chunk():
    """200k frames run chunk by chunk; any window equals a whole-array run around it."""
    torch.manual_seed(0)
    model = build_sequence_model("tgmj", 8, 2).eval()
    ctx = int(model.receptive_field)
    feats = np.random.default_rng(0).normal(size=(200_000, 8)).astype(np.float32)
    lengths = []
    hook = model.register_forward_pre_hook(lambda m, a: lengths.append(a[0].shape[1]))
    chunked = sequence_logits(model, feats, chunk=20_000)
    hook.remove()
    assert chunked.shape == (200_000, 2) and chunked.dtype == np.float32
    assert max(lengths) <= 20_000 + 2 * ctx  # memory O(chunk), never the video
    for a in (0, 19_990, 123_456, 200_000 - 300):
        lo, hi = max(a - ctx, 0), min(a + 300 + ctx, 200_000)
        whole = sequence_logits(model, feats[lo:hi], chunk=10**9)
        np.testing.assert_allclose(chunked[a : a + 300], whole[a - lo : a - lo + 300], atol=1e-5)


def test_stacks_of_a_long_video_hold_a_few_batches_not_the_video():
    """16,000 frames (49 MB) stream through stacks() holding O(batch) frames at a time."""
    import tracemalloc

    from deg_core.infer.features import stacks

    n, chunk, batch = 16_000, 32, 16

    def frames():
        for i in range(0, n, chunk):
            yield np.full((chunk, 32, 32, 3), i % 251, np.uint8)

    tracemalloc.start()
    count = 0
    for start, stack in stacks(frames(), n, 11, batch):
        assert start == count and stack.shape[1:] == (11, 32, 32, 3)
        count += len(stack)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == n
    frame = 32 * 32 * 3
    assert peak < 20 * (chunk + batch * 11) * frame  # a few chunks and stacks: ~4 MB, not 49


def test_pairwise_inference_reuses_flows_frame_aligned_and_batch_independent(make_video):
    """A pairwise generator (the lite preset's PairFlowNet) computes each pair once while
    streaming, yet every frame's features equal the model run on that frame's own stack
    (frame alignment), whatever the batch size (a frame's features do not depend on where
    its batch starts)."""
    from deg_core.infer.features import stacks
    from deg_core.video import open_video

    n = 19
    video = make_video(n=n, h=SIZE, w=SIZE)
    fm = tiny_feature_model(flow="PairFlowNet")
    fm.model.rgb_stride = 2  # as in the lite preset
    calls = []
    hook = fm.model.flow_generator.register_forward_pre_hook(lambda m, a: calls.append(1))
    runs = {b: collect(fm, video, n, b, REFERENCE) for b in (1, 4, 7, 32)}
    hook.remove()
    assert not calls  # never the stack forward: pairs only, through PairFlowStream
    with open_video(video) as r:
        decoded = np.concatenate([c for _, c in r.iter_chunks(64, size=(SIZE, SIZE))])
    ((_, stack),) = stacks(iter([decoded]), n, N_RGB, n)  # (T, N, H, W, 3), ends repeated
    x = torch.from_numpy(stack).permute(0, 1, 4, 2, 3).float() / 255
    x = ((x - fm.mean.unsqueeze(1)) / fm.std.unsqueeze(1)).flatten(1, 2)
    with torch.no_grad():
        direct = fm.model(x)
    for b, out in runs.items():
        for name in DATASETS[:3]:
            np.testing.assert_allclose(
                out[name], direct[name].numpy(), rtol=1e-4, atol=1e-4, err_msg=f"{name} b={b}"
            )
    # and the fast path (decode-ahead, channels_last) agrees
    fast = collect(fm, video, n, 4, InferenceOptions(prefetch=2, channels_last=True))
    np.testing.assert_allclose(fast["logits"], runs[4]["logits"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("precision", "native", "want"),
    [
        ("auto", False, None),  # emulated bf16 is slower: float32
        ("auto", True, torch.bfloat16),  # AVX512-BF16/AMX: on by default
        ("float32", True, None),
        ("bfloat16", False, torch.bfloat16),  # asked for: emulated
        ("float16", False, torch.float16),
    ],
)
def test_compute_precision_picks_the_cpu_autocast(monkeypatch, precision, native, want):
    from deg_core.infer import feature_predictor

    monkeypatch.setattr(feature_predictor, "_cpu_has_bf16", lambda: native)
    fm = tiny_feature_model()
    fm.precision = precision
    assert fm.autocast_dtype(InferenceOptions()) == want
    assert fm.autocast_dtype(InferenceOptions(autocast=False)) is None
    assert fm.autocast_dtype(InferenceOptions(autocast=True)) == torch.bfloat16


def test_compute_precision_is_a_setting(tiny_project):
    from deg_core.config import ConfigError
    from deg_core.infer.preset import describe, preset_predictor

    cfg = tiny_project.resolve_config(["compute.precision=bfloat16"])
    assert describe(preset_predictor(cfg, 2)).dtype == "bfloat16"
    with pytest.raises(ConfigError, match=r"compute\.precision"):
        tiny_project.resolve_config(["compute.precision=int4"])
