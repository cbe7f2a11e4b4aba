"""Untrusted image and video files -> RGB uint8 frames, and frames -> PNG files.

It owns decoding (with a pixel-count guard against decompression bombs, and videos in a guarded
child process with a timeout and a memory limit) and resizing to the tokenizer's 256x256. Both
the build's readers and the tokenizer's training data use it; it knows nothing of datasets,
sentences or shards.
"""
