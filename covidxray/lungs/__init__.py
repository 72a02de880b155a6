"""The lung field: the bundled segmenter (runtime, training, evaluation) and severity scoring.

segmenter: U-Net masks, crops and outlines (torch or ONNX); severity and severity_fit: extent and
opacity scores and their fit; segmenter_training / segmenter_evaluation / mask_pairs / bootstrap:
how the bundled segmenter is made and measured; command: `covidxray lungs train`, `severity fit`.
"""
