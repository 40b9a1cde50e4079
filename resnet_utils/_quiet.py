"""Import TensorFlow without its C++ start-up lines on stderr, but keep everything else.

TensorFlow 2.21 writes a block of lines to file descriptor 2 when it is imported and when it first
looks for devices (oneDNN, CUDA drivers, CPU instructions, and on a machine without a GPU driver
``E0000 ... failed call to cuInit``). They are written before TensorFlow's logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` does not hide them, and in Jupyter they show as a pink stderr block that
reads like an error. :func:`import_tensorflow_quietly` points file descriptor 2 at a temporary file
for the import and the device discovery, then restores it and writes back every line that is *not*
one of these known start-up lines: real errors still show.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# Lines TensorFlow writes on every start; none of them is a problem.
STARTUP_PATTERNS = [
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"^[IW]\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on",
    r"^[IW]\d{4} [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r"^[IW]\d{4} [\d:. ]+\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$",
    r"^E\d{4} [\d:. ]+\d+ cuda_platform\.cc:\d+\] failed call to cuInit",
    r"^[IWE]\d{4} [\d:. ]+\d+ cuda_(dnn|fft|blas)\.cc:\d+\] Unable to register cu(DNN|FFT|BLAS) factory",
    r"^[IW]\d{4} [\d:. ]+\d+ computation_placer\.cc:\d+\] computation placer already registered",
    r"^[IW]\d{4} [\d:. ]+\d+ .*TF-TRT Warning: Could not find TensorRT",
]
_STARTUP = re.compile("|".join(f"(?:{p})" for p in STARTUP_PATTERNS))


def is_startup_line(line: str) -> bool:
    """True for a line of TensorFlow's known C++ start-up chatter."""
    return bool(_STARTUP.search(line.rstrip("\n")))


def keep_lines(text: str) -> str:
    """``text`` without TensorFlow's start-up lines (everything else, e.g. a real error, is kept)."""
    return "".join(line for line in text.splitlines(keepends=True) if not is_startup_line(line))


def import_tensorflow_quietly():
    """Import TensorFlow and let it find its devices with stderr filtered (see the module doc).

    Does nothing special if TensorFlow is already imported, or if file descriptor 2 cannot be
    redirected; ``RESNET_TF_STARTUP_LOG=1`` leaves stderr alone.
    """
    if "tensorflow" in sys.modules or os.environ.get("RESNET_TF_STARTUP_LOG") == "1":
        import tensorflow as tf

        return tf
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        import tensorflow as tf

        return tf
    captured = tempfile.TemporaryFile(mode="w+b")
    try:
        os.dup2(captured.fileno(), 2)
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery: where "failed call to cuInit" is written
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        captured.seek(0)
        rest = keep_lines(captured.read().decode("utf-8", "replace"))
        captured.close()
        if rest:
            sys.stderr.write(rest)
            sys.stderr.flush()
    return tf


def tensorflow():
    """TensorFlow, imported quietly the first time (with ``KERAS_BACKEND`` other than tensorflow,
    imported plainly): what every module of the package calls before it needs TensorFlow or Keras,
    so that importing the package itself stays cheap (``python -m resnet_utils.train --help``)."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        import tensorflow as tf

        return tf
    return import_tensorflow_quietly()
