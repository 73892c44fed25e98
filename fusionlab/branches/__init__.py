"""Branches: feature extractors over ``(batch, channels, length)`` returning ``(B, T, D)``."""

from fusionlab.branches.bag_of_ngrams import BagOfNgramsBranch
from fusionlab.branches.base import Branch
from fusionlab.branches.cnn import CNNBranch
from fusionlab.branches.cnn2d import CNN2dBranch
from fusionlab.branches.inception import InceptionBranch
from fusionlab.branches.mlp import MLPBranch
from fusionlab.branches.pretrained_transformer import PretrainedTransformerBranch
from fusionlab.branches.resnet import ResNetBranch
from fusionlab.branches.rnn import RNNBranch
from fusionlab.branches.stacked import StackedBranch
from fusionlab.branches.transformer import TransformerBranch

__all__ = ["BagOfNgramsBranch", "Branch", "CNN2dBranch", "CNNBranch", "InceptionBranch", "MLPBranch",
           "PretrainedTransformerBranch", "ResNetBranch", "RNNBranch", "StackedBranch", "TransformerBranch"]
