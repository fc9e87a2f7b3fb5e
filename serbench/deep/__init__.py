"""Deep models and their training loops (PyTorch): the building blocks of the deep systems.

* :mod:`~serbench.deep.alexnet`: torchvision-named AlexNet (``load_pretrained``);
* :mod:`~serbench.deep.sru`: the Simple Recurrent Unit (Jiang et al. equations 3-7);
* :mod:`~serbench.deep.models`: the segment CNN builder, the SRU classifier, the CNN's utterance decision;
* :mod:`~serbench.deep.crnn`, :mod:`~serbench.deep.crnn_ctc`, :mod:`~serbench.deep.crnn_mk`,
  :mod:`~serbench.deep.dcnn_blstm_att`: the seed papers' networks; :mod:`~serbench.deep.augment`
  their training-set augmentation;
* :mod:`~serbench.deep.data` (segment images, low-level sequences, normalization),
  :mod:`~serbench.deep.batching` (variable-length batches);
* :mod:`~serbench.deep.train` (the epoch loop: checkpoints, exact resume, early stopping),
  :mod:`~serbench.deep.utterance_trainer`, :mod:`~serbench.deep.optim` (the optimizers, fused where
  torch has the kernel).

The systems that use them (settings, folds, the results store) are in
:mod:`serbench.systems.builtin`; run them with ``serbench deep`` or
:func:`serbench.systems.run_deep`.
"""
from serbench.deep.alexnet import AlexNet, PretrainedError, load_pretrained
from serbench.deep.models import SRUClassifier, cnn_utterance_probs
from serbench.deep.sru import SRU

__all__ = ["AlexNet", "PretrainedError", "load_pretrained", "SRU", "SRUClassifier", "cnn_utterance_probs"]
