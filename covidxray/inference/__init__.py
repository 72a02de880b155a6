"""Reading an X-ray: a checkpoint (PyTorch or its ONNX export) turned into screening answers.

inputs (files, bytes, arrays; read in batches) -> classifier (door check, preprocessing, backend,
calibration, decision rule) -> predictor (gate, model, severity, heat maps) -> writers and CLI.
Nothing here imports covidxray.training.
"""
