"""Training recipes (torch + MONAI, extra ``train``): data sets, lesion insertion, ONNX export.

Nothing here is imported by inference code; :mod:`pneumolens.models.preprocess` holds the input
normalisation shared by training and inference.
"""
