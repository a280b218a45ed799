"""Reading WAV files: 8 kHz mono 16-bit PCM only, with one clear error for anything else."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from convlens import audio


def wav_bytes(samples, rate=8000, channels=1, width=2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples).astype(f"<i{width}").tobytes())
    return buffer.getvalue()


def test_read_wav_scales_16_bit_samples(tmp_path):
    samples = np.random.default_rng(0).integers(-32768, 32768, 500)
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(samples))
    np.testing.assert_array_equal(audio.read_wav(path), samples.astype(np.float32) / 32768)
    np.testing.assert_array_equal(audio.read_wav(str(path)), audio.read_wav(io.BytesIO(path.read_bytes())))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 16000}, "16000 Hz, 1 channel"),
        ({"channels": 2}, "2 channel"),
        ({"width": 4}, "32-bit"),
    ],
)
def test_read_wav_refuses_other_formats_and_says_so(tmp_path, kwargs, message):
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(np.zeros(100 * kwargs.get("channels", 1)), **kwargs))
    with pytest.raises(audio.WavError, match=message) as info:
        audio.read_wav(path)
    assert "Refused, not resampled" in str(info.value) and "sox" in str(info.value)
    assert "\n" not in str(info.value)


def test_read_wav_empty_truncated_and_not_a_wav(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(wav_bytes([]))
    with pytest.raises(audio.WavError, match="is empty"):
        audio.read_wav(empty)
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(wav_bytes(np.arange(1000))[:-600])
    with pytest.raises(audio.WavError, match="truncated: its header says 1000 samples, the file holds 700"):
        audio.read_wav(truncated)
    for content in (b"", b"RIFF\x00\x00", b"hello world, not a wav at all"):
        bad = tmp_path / "bad.wav"
        bad.write_bytes(content)
        with pytest.raises(audio.WavError, match="is not a PCM WAV file"):
            audio.read_wav(bad)


def test_fix_length_centres_pads_and_crops():
    x = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(audio.fix_length(x, 8), [0, 1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(audio.fix_length(x, 3), [2, 3, 4])
    np.testing.assert_array_equal(audio.fix_length(x, 5), x)


def test_normalize_peak():
    x = np.array([[0.5, -0.25], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(audio.normalize_peak(x), [[1.0, -0.5], [0.0, 0.0]])
