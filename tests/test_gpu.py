"""CUDA-only checks of the fast paths: autocast and channels_last against float32, a
torch.compile smoke test, autobatch on the real device. Skipped cleanly without a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deg_core.compute import autobatch
from deg_core.errors import DegError
from deg_core.infer.features import DATASETS, REFERENCE, InferenceOptions
from deg_core.infer.sequence import sequence_logits
from deg_core.models.sequence import build_sequence_model
from tests.infer.test_fast_inference import collect, tiny_feature_model

pytestmark = pytest.mark.gpu


def on_gpu():
    fm = tiny_feature_model()
    fm.model.to("cuda")
    return fm


def test_cuda_fast_path_matches_cpu_float32_reference(make_video):
    video = make_video(n=17, h=64, w=64)
    cpu = collect(tiny_feature_model(), video, 17, 4, REFERENCE)
    fm = on_gpu()
    fp32 = collect(fm, video, 17, 4, InferenceOptions(autocast=False, channels_last=True))
    for name in DATASETS:  # TF32 convolutions allowed: loose float32 tolerance
        np.testing.assert_allclose(fp32[name], cpu[name], rtol=1e-2, atol=1e-2, err_msg=name)


def test_lite_pairwise_path_on_cuda_matches_cpu(make_video):
    """The lite preset's PairFlowNet streams pairs on CUDA through the same fast path
    (decode-ahead, channels_last, autocast) and gives the CPU float32 features."""
    video = make_video(n=17, h=64, w=64)
    cpu_fm = tiny_feature_model(flow="PairFlowNet")
    cpu_fm.model.rgb_stride = 2
    cpu = collect(cpu_fm, video, 17, 4, REFERENCE)
    fm = tiny_feature_model(flow="PairFlowNet")
    fm.model.rgb_stride = 2
    fm.model.to("cuda")
    fp32 = collect(fm, video, 17, 4, InferenceOptions(autocast=False, channels_last=True))
    amp = collect(fm, video, 17, 4, InferenceOptions(autocast=True))
    for name in DATASETS:
        np.testing.assert_allclose(fp32[name], cpu[name], rtol=1e-2, atol=1e-2, err_msg=name)
    assert np.corrcoef(amp["logits"].ravel(), cpu["logits"].ravel())[0, 1] > 0.99


def test_cuda_autocast_within_mixed_precision_tolerance(make_video):
    video = make_video(n=17, h=64, w=64)
    fm = on_gpu()
    ref = collect(fm, video, 17, 4, REFERENCE)
    amp = collect(fm, video, 17, 4, InferenceOptions(autocast=True))
    assert fm.autocast_dtype(InferenceOptions(autocast=True)) in (torch.bfloat16, torch.float16)
    for name in DATASETS:
        assert amp[name].dtype == np.float32
        scale = np.abs(ref[name]).max() + 1e-6
        assert np.abs(amp[name] - ref[name]).max() / scale < 0.05, name
    assert np.corrcoef(amp["logits"].ravel(), ref["logits"].ravel())[0, 1] > 0.99


def test_channels_last_weights_on_cuda():
    fm = on_gpu()
    fm.prepared(InferenceOptions(channels_last=True))
    conv = next(p for p in fm.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    fm.prepared(REFERENCE)
    assert conv.is_contiguous()


def test_torch_compile_smoke(make_video):
    video = make_video(n=9, h=64, w=64)
    fm = on_gpu()
    ref = collect(fm, video, 9, 3, REFERENCE)
    compiled = collect(fm, video, 9, 3, InferenceOptions(compile=True, autocast=False))
    np.testing.assert_allclose(compiled["logits"], ref["logits"], rtol=1e-2, atol=1e-2)


def test_sequence_inference_on_cuda_with_autocast():
    model = build_sequence_model("tgmj", 16, 2).eval()
    feats = np.random.default_rng(0).normal(size=(3000, 16)).astype(np.float32)
    ref = sequence_logits(model, feats)
    out = sequence_logits(model.cuda(), feats, chunk=1000, autocast=True)
    assert out.dtype == np.float32 and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=0.05, rtol=0.05)


def test_autobatch_on_the_real_device():
    autobatch.clear_cache()
    fm = on_gpu()
    b = fm.auto_batch(cap=64)
    assert b in (1, 2, 4, 8, 16, 32, 64)
    assert fm.auto_batch(cap=64) == b  # cached
    total = torch.cuda.get_device_properties(0).total_memory
    hog = int(total * 4)  # more than the device has: OOM at batch 1 -> explained

    def step(n):
        torch.empty(hog * n, dtype=torch.uint8, device="cuda")

    with pytest.raises(DegError, match="at batch 1"):
        autobatch.find_batch(step, torch.device("cuda"), "too-big")
