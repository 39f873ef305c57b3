"""Schedules of other libraries (HF transformers, optax, timm, Keras, fastai) and composition.

Every family is an *absolute* schedule: a closed form of the step evaluated on an int64 array
``k`` in O(len(k)), never stepped. Inside PyTorch composites (SequentialLR, ChainedScheduler)
they behave like ``LambdaLR``: each step sets the lr, whatever it was.
"""
