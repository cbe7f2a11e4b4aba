"""The VQGAN image tokenizer: 256x256 images <-> 256 token ids from an 8192-entry codebook.

LVM (Bai et al. 2023) trains its language model on the token ids of taming-transformers'
VQGAN (as reimplemented by open-muse), so this package rebuilds that exact architecture, with
taming's parameter names so released weights load without renaming, and adds what the
pipeline needs around it: named sizes, a pickle-free checkpoint format, deterministic random
weights for untrained runs, and a sha256 that records which weights made a dataset's tokens.
"""

from uvd.tokenizer.checkpoint import load_tokenizer, save_tokenizer
from uvd.tokenizer.config import CONFIGS, TokenizerInfo, VQGANConfig, get_config
from uvd.tokenizer.formats import CheckpointError
from uvd.tokenizer.frames import decode_frames, encode_frames
from uvd.tokenizer.vqgan import VQGAN, VQGANOutput

__all__ = ["CONFIGS", "CheckpointError", "VQGAN", "VQGANConfig", "VQGANOutput", "TokenizerInfo", "decode_frames",
           "encode_frames", "get_config", "load_tokenizer", "save_tokenizer"]
