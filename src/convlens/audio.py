"""Sound in, model inputs out: reading WAV files and fixing their length.

A recording is a sequence of samples, a 1-D signal: the input of a 1-D convolution.
The spoken-digit models take 8 kHz mono 16-bit PCM (the format of the Free Spoken
Digit Dataset). Other WAVs are *refused*, not resampled: resampling would hand the
model a signal unlike the ones it learned from, silently; the error says how to
convert (e.g. ``sox in.wav -r 8000 -c 1 -b 16 out.wav``).

Reading uses the standard library's :mod:`wave`.

>>> import io, wave, numpy as np
>>> buffer = io.BytesIO()
>>> with wave.open(buffer, "wb") as w:
...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
...     w.writeframes(np.array([0, 16384, -32768], "<i2").tobytes())
>>> _ = buffer.seek(0)
>>> read_wav(buffer)
array([ 0. ,  0.5, -1. ], dtype=float32)
>>> fix_length(np.ones(3, np.float32), 5)
array([0., 1., 1., 1., 0.], dtype=float32)
"""

from __future__ import annotations

import os
import wave
from typing import IO

import numpy as np

__all__ = ["SAMPLE_RATE", "WavError", "fix_length", "normalize_peak", "read_wav"]

SAMPLE_RATE = 8000
_CONVERT = "convert it first, e.g. `sox in.wav -r 8000 -c 1 -b 16 out.wav`"


class WavError(ValueError):
    """A WAV file that cannot be read, or is not 8 kHz mono 16-bit PCM."""


def read_wav(source: str | os.PathLike | IO[bytes], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The samples of a mono 16-bit PCM WAV at ``sample_rate`` Hz, as float32 in [-1, 1).

    ``x[t] = pcm[t] / 32768``.

    Raises:
        WavError: not a WAV (or not PCM), empty (no samples), truncated (the header
            promises more samples than the file holds), or not ``sample_rate`` Hz mono
            16-bit; never resampled (see the module docstring).
    """
    name = os.fspath(source) if isinstance(source, str | os.PathLike) else getattr(source, "name", "<stream>")
    try:
        with wave.open(source if not isinstance(source, os.PathLike) else os.fspath(source), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.getnframes()
            data = w.readframes(frames)
    except (wave.Error, EOFError) as error:
        raise WavError(f"read_wav: {name} is not a PCM WAV file ({error}). Received: {name}") from None
    if (channels, width, rate) != (1, 2, sample_rate):
        raise WavError(
            f"read_wav: {name} must be {sample_rate} Hz mono 16-bit PCM; it is {rate} Hz, "
            f"{channels} channel(s), {8 * width}-bit. Refused, not resampled: {_CONVERT}"
        )
    if frames == 0:
        raise WavError(f"read_wav: {name} is empty (0 samples)")
    if len(data) < frames * width:
        raise WavError(
            f"read_wav: {name} is truncated: its header says {frames} samples, "
            f"the file holds {len(data) // width}"
        )
    return (np.frombuffer(data, "<i2").astype(np.float32) / np.float32(32768)).copy()


def fix_length(samples: np.ndarray, length: int) -> np.ndarray:
    """``samples`` centred in ``length``: zero-padded equally on both sides, or its middle kept.

    A spoken digit sits in the middle of its recording (FSDD's are trimmed to near-minimal
    silence), so centring keeps all of a short one and the middle of a long one.
    """
    n = len(samples)
    if n >= length:
        start = (n - length) // 2
        return samples[start : start + length].copy()
    before = (length - n) // 2
    out = np.zeros(length, samples.dtype)
    out[before : before + n] = samples
    return out


def normalize_peak(waveforms: np.ndarray) -> np.ndarray:
    """Each row scaled to a peak of 1: the speakers recorded at very different levels."""
    peak = np.abs(waveforms).max(axis=-1, keepdims=True)
    return (waveforms / np.maximum(peak, 1e-4)).astype(np.float32)
