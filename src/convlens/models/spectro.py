"""A log-mel spectrogram front end written as convolutions, then a small 2-D CNN.

A short-time Fourier transform is a *strided 1-D convolution with fixed kernels*:
frame ``t`` of bin ``f`` is ``X[f, t] = sum_n w[n] x[t*hop + n] e^{-2 pi i f n / N}``,
i.e. ``conv1d`` of the waveform with the kernels ``w[n] cos(2 pi f n / N)`` and
``-w[n] sin(2 pi f n / N)`` (``w`` the Hann window), stride ``hop``. Then

    power = re^2 + im^2          (N/2 + 1 bins, per frame)
    mel   = M . power            (a 1x1 convolution with the fixed mel filterbank M)
    image = log(mel + 1e-6)      (n_mels x frames: a picture of the sound)

and the picture goes through conv 3x3 + BatchNorm + ReLU + max-pool blocks, global
average pooling and a linear classifier. The STFT and mel kernels are buffers: saved
with the model, never trained.

>>> from convlens import models
>>> model = models.get("logmel_cnn")
>>> model.spectrogram_shape(6144)
(40, 47)
>>> model.output_shape((1, 6144))
(10,)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import Tensor

__all__ = ["LogMelCNN", "hann_stft_kernels", "logmel_cnn", "mel_filterbank"]


def hann_stft_kernels(n_fft: int) -> np.ndarray:
    """(2 * (n_fft//2 + 1), 1, n_fft) float32: the cosine then the sine kernels of the windowed DFT."""
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann, as torch.hann_window
    freqs = np.arange(n_fft // 2 + 1)[:, None]
    angle = 2 * np.pi * freqs * n / n_fft
    kernels = np.concatenate([window * np.cos(angle), -window * np.sin(angle)])
    return kernels[:, None, :].astype(np.float32)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """(n_mels, n_fft//2 + 1) triangular filters equally spaced on the mel scale
    ``m = 2595 log10(1 + f / 700)`` (HTK's formula), from 0 Hz to the Nyquist frequency."""

    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges_mel = np.linspace(0.0, to_mel(np.array(sample_rate / 2)), n_mels + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - low) / (centre - low)
    falling = (high - bins) / (high - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


class LogMelCNN(nn.Module):
    """Waveform (N, 1, L) -> log-mel image (N, 1, n_mels, frames) -> CNN -> (N, num_classes) logits.

    ``frames = floor((L - n_fft) / hop) + 1`` (the strided convolution's output size).
    """

    def __init__(
        self,
        num_classes: int = 10,
        n_fft: int = 256,
        hop: int = 128,
        n_mels: int = 40,
        channels: tuple[int, ...] = (16, 32, 64),
        sample_rate: int = 8000,
        length: int = 6144,
    ):
        super().__init__()
        self.n_fft, self.hop, self.n_mels = n_fft, hop, n_mels
        self.input_shape = (1, length)
        self.register_buffer("stft", hann_stft_kernels(n_fft))
        self.register_buffer("mel", mel_filterbank(n_mels, n_fft, sample_rate)[:, :, None])
        layers: list[nn.Module] = [nn.BatchNorm2d(1)]  # standardises the log-mel values
        previous = 1
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
            previous = width
        self.cnn = nn.Sequential(*layers)
        self.classifier = nn.Linear(previous, num_classes)

    def spectrogram_shape(self, length: int) -> tuple[int, int]:
        return self.n_mels, (length - self.n_fft) // self.hop + 1

    def log_mel(self, x: Any) -> Tensor:
        """(N, 1, L) -> (N, 1, n_mels, frames): the STFT and the mel filters as convolutions."""
        spectrum = F.conv1d(x, self.stft, stride=self.hop)
        bins = spectrum.shape[1] // 2
        power = spectrum[:, :bins] * spectrum[:, :bins] + spectrum[:, bins:] * spectrum[:, bins:]
        mel = F.conv1d(power, self.mel)
        image = (mel + 1e-6).log()
        return image.reshape(image.shape[0], 1, *image.shape[1:])

    def forward(self, x: Any) -> Tensor:
        return self.classifier(self.cnn(self.log_mel(x)).mean((2, 3)))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, length = input_shape
        self.cnn.output_shape((1, *self.spectrogram_shape(length)))
        return (self.classifier.out_features,)


def logmel_cnn(num_classes: int = 10, n_mels: int = 40, length: int = 6144) -> LogMelCNN:
    """The spoken-digit log-mel CNN for 8 kHz waveforms of ``length`` samples (module docstring)."""
    model = LogMelCNN(num_classes, n_mels=n_mels, length=length)
    model._factory = ("logmel_cnn", {"num_classes": num_classes, "n_mels": n_mels, "length": length})
    return model
