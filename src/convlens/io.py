"""Placeholder: being written."""


def save(*args, **kwargs):
    raise NotImplementedError


def load(*args, **kwargs):
    raise NotImplementedError
