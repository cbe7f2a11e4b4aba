"""Beam TestPipeline over the composite transforms, on the DirectRunner's FnApiRunner."""

import apache_beam as beam
import numpy as np
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from uvd.pipeline.config import BuildConfig, SourceConfig
from uvd.pipeline.transforms import DecodedFrames, TokenizedFrames, VisualSentences, item_from_path

CONFIG = BuildConfig(tokenizer="random:tiny", batch_size=4)


def sources(dirs):
    return [SourceConfig(name="images", kind="images", root=str(dirs["images"])),
            SourceConfig(name="videos", kind="videos", root=str(dirs["videos"]))]


def test_item_from_path_filters_by_kind_and_hidden():
    src = SourceConfig(name="s", kind="images", root="/r")
    assert item_from_path("/r/a/b.JPG", src).key == "a/b.JPG"
    assert item_from_path("/r/a/b.mp4", src) is None
    assert item_from_path("/r/.cache/b.png", src) is None


def test_decoded_frames_plans_and_rejects(bad_media):
    with TestPipeline(runner=FnApiRunner()) as p:
        frames, plans, rejects, counts = p | DecodedFrames(sources(bad_media), CONFIG)
        shapes = frames | beam.Map(lambda kv: (kv[0][1] < 16, kv[1].shape, str(kv[1].dtype)))
        assert_that(shapes | "Distinct" >> beam.Distinct(),
                    equal_to([(True, (256, 256, 3), "uint8")]), label="FrameShapes")
        # 4 photos -> 4 one-image plans; pan.mp4 (40 frames) -> 1 clip
        assert_that(plans | beam.Map(lambda kv: kv[1].num_images), equal_to([1, 1, 1, 1, 16]), label="Plans")
        assert_that(frames | "CountFrames" >> beam.combiners.Count.Globally(), equal_to([4 + 16]), label="Frames")
        assert_that(rejects | beam.Map(lambda r: (r.item_key, r.reason)),
                    equal_to([("broken.png", "unreadable_image"), ("broken.mp4", "unreadable_video"),
                              ("short.mp4", "video_too_short")]), label="Rejects")
        assert_that(counts, equal_to([("images", 5), ("videos", 3)]), label="Counts")


def test_tokenized_frames_and_sentences(media_dirs):
    with TestPipeline(runner=FnApiRunner()) as p:
        frames, plans, _, _ = p | DecodedFrames(sources(media_dirs), CONFIG)
        tokens = frames | TokenizedFrames(CONFIG, device="cpu")
        assert_that(tokens | beam.Map(lambda kv: (kv[1].shape, str(kv[1].dtype))) | beam.Distinct(),
                    equal_to([((256,), "uint16")]), label="TokenShapes")
        sentences, rejects = (plans, tokens) | VisualSentences()
        assert_that(sentences | beam.Map(lambda s: (s.meta.layout, s.tokens.shape)),
                    equal_to([("single_image", (1, 256))] * 4 + [("video_clip", (16, 256))]), label="Sentences")
        assert_that(rejects, equal_to([]), label="NoRejects")


def test_tokens_match_direct_encode(media_dirs):
    """RunInference batching must not change a frame's codes."""
    import torch

    from uvd.pipeline import decode
    from uvd.tokenizer import load_tokenizer

    path = media_dirs["images"] / "chelsea.png"
    frame = decode.resize_frame(decode.decode_image(path.read_bytes(), max_pixels=10**8, name="c"), 256)
    model = load_tokenizer("random:tiny")
    expected = model.encode(torch.from_numpy(frame[None]).permute(0, 3, 1, 2).float() / 255)[0].numpy()
    with TestPipeline(runner=FnApiRunner()) as p:
        frames, _, _, _ = p | DecodedFrames(sources(media_dirs), CONFIG)
        tokens = frames | TokenizedFrames(CONFIG, device="cpu")
        chelsea = tokens | beam.Filter(lambda kv, k: kv[0][0] == k, k=_key("chelsea.png"))
        assert_that(chelsea | beam.Map(lambda kv: kv[1].astype(np.int64).tolist()),
                    equal_to([expected.tolist()]))


def _key(item_key):
    from uvd.pipeline.format import sentence_key

    return sentence_key("images", item_key, 0)


def test_handler_codes_do_not_depend_on_batching(media_dirs):
    """A frame's codes are the same alone, in a partial batch, or among other frames."""
    from uvd.pipeline import decode
    from uvd.pipeline.inference import VQGANModelHandler, pad_batch

    frames = [decode.resize_frame(decode.decode_image(p.read_bytes(), max_pixels=10**8, name=p.name), 256)
              for p in sorted(media_dirs["images"].glob("*.png"))]
    handler = VQGANModelHandler("random:small", batch_size=4, device="cpu")
    model = handler.load_model()
    alone = [handler.run_inference([f], model)[0] for f in frames]
    together = handler.run_inference(frames, model)
    reversed_ = handler.run_inference(frames[::-1], model)[::-1]
    for a, b, c in zip(alone, together, reversed_):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert pad_batch(np.stack(frames[:1]), 4).shape[0] == 4
