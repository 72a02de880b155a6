"""The input gate: is this a frontal chest radiograph? The runtime verdict and how it is fitted.

runtime: refuse or warn, with reasons, before any probability is given; fit: the fitted model
(covidxray/weights/gate.npz) from the four collections; command: `covidxray gate fit`.
"""
