"""Keras-style layers (``from graphc.layers import Dense, Conv2D, LSTM, Input``)."""
from .base import KerasTensor, Layer
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Lambda, Masking, Reshape
from .conv import (AveragePooling2D, AvgPool2D, Conv2D, GlobalAveragePooling1D,
                   GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D,
                   GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool2D, MaxPooling2D)
from .conv1d import AveragePooling1D, AvgPool1D, Conv1D, MaxPool1D, MaxPooling1D
from .recurrent import GRU, LSTM, SimpleRNN
from .normalization import BatchNormalization, LayerNormalization
from .embedding import Embedding
from .merge import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add,
                    concatenate)
from .attention import MultiHeadAttention
from .wrappers import Bidirectional, TimeDistributed, Wrapper

Convolution2D = Conv2D
Convolution1D = Conv1D

__all__ = ["Layer", "KerasTensor", "Input", "InputLayer", "Dense", "Activation", "Dropout",
           "Flatten", "Reshape", "Lambda", "Masking", "Conv2D", "Convolution2D", "MaxPooling2D", "MaxPool2D",
           "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D",
           "GlobalMaxPooling2D", "GlobalMaxPool2D", "GlobalAveragePooling1D", "GlobalAvgPool1D",
           "GlobalMaxPooling1D", "GlobalMaxPool1D", "Conv1D", "Convolution1D", "MaxPooling1D",
           "MaxPool1D", "AveragePooling1D", "AvgPool1D", "SimpleRNN", "LSTM", "GRU", "BatchNormalization", "LayerNormalization", "Embedding", "Add", "Subtract",
           "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "add", "concatenate",
           "MultiHeadAttention", "Wrapper", "Bidirectional", "TimeDistributed"]
