"""The other systems of the seed papers (issue 6) as standalone PyTorch modules.

* :class:`CRNN` (:mod:`~serbench.deep.systems.crnn`): CNN + BLSTM + FC baseline.
* :class:`CRNNCTC` (:mod:`~serbench.deep.systems.crnn_ctc`): Zhu et al. 2020, frame outputs
  trained with CTC on energy-split emotional frames.
* :class:`CRNNMK` (:mod:`~serbench.deep.systems.crnn_mk`): Meyer et al. 2021, multi-kernel
  CNN, learned summarization, enhanced features, label smoothing; one flag each.
* :class:`DCNNBLSTMAtt` (:mod:`~serbench.deep.systems.dcnn_blstm_att`): Zhang et al. 2021,
  segment CNN features + BLSTM + attention + DNN; augmentation and class balancing in
  :mod:`~serbench.deep.systems.augment` (training folds only).

Common interface: ``out = model(x, lengths)`` with ``x (B, C, F, T)`` padded log-mel
(``(B, N, 3, H, W)`` segment images for DCNN-BLSTMwA) and ``lengths (B,)``; ``out`` is a
:class:`SystemOutput` (``logits (B, n_classes)``, frame outputs, output lengths, attention
weights); ``model.loss(out, labels)`` is the training loss. Padding never changes a result.

>>> from serbench.deep.systems import CRNNMK, pad_batch
>>> x, lengths = pad_batch(mels)                 # list of (3, 60, T_i) melseg arrays   # doctest: +SKIP
>>> model = CRNNMK(n_classes=4)                                                         # doctest: +SKIP
>>> out = model(x, lengths); loss = model.loss(out, labels)                             # doctest: +SKIP
>>> probs = out.logits.softmax(dim=1)                                                   # doctest: +SKIP

In the toolkit they run as ``serbench deep --model crnn|crnn-ctc|crnn-mk|dcnn-blstm-att``
(:func:`serbench.deep.run.run_deep`), trained per fold with checkpoints and resume by
:mod:`~serbench.deep.systems.runner`, with the ``paper`` / ``fast`` / ``tiny`` settings of
:mod:`~serbench.deep.systems.settings` (``--set key=value`` overrides any of them).
"""
from serbench.deep.systems.augment import (
    AugmentError, augment, augment_training_set, balanced_indices, freq_mask, time_mask, time_shift,
)
from serbench.deep.systems.crnn import (
    BLSTM, CRNN, AttentionPool, ConvStack, MaskedBatchNorm2d, Summary, SystemInputError, SystemOutput, length_mask,
    pad_batch,
)
from serbench.deep.systems.crnn_ctc import (
    CRNNCTC, CTCAlignmentError, ctc_loss, ctc_targets, decode, emotional_frames, frame_energy_db, pool_energy,
    utterance_log_probs,
)
from serbench.deep.systems.crnn_mk import CRNNMK, MultiKernelConv, utterance_normalize
from serbench.deep.systems.dcnn_blstm_att import ConvSegmentEncoder, DCNNBLSTMAtt, FeatureExtractor, stack_segments

SYSTEMS = ("crnn", "crnn-ctc", "crnn-mk", "dcnn-blstm-att")

__all__ = [
    "SYSTEMS", "SystemOutput", "SystemInputError", "Summary", "length_mask", "pad_batch", "MaskedBatchNorm2d", "ConvStack",
    "BLSTM", "AttentionPool", "CRNN", "CRNNCTC", "CTCAlignmentError", "ctc_loss", "ctc_targets", "decode",
    "emotional_frames", "frame_energy_db", "pool_energy", "utterance_log_probs", "CRNNMK", "MultiKernelConv",
    "utterance_normalize", "DCNNBLSTMAtt", "ConvSegmentEncoder", "FeatureExtractor", "stack_segments",
    "AugmentError", "augment", "augment_training_set", "balanced_indices", "freq_mask", "time_mask", "time_shift",
]
