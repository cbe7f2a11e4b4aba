"""What each position of a sentence shows: a reader's picture resized to 256x256 (``frames``), or a
view derived from it, by a transform (``derived``: gray, masked) or by an annotator model
(``annotators``: depth, normals, segmentation, pose, edges)."""
