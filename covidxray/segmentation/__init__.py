"""Training and evaluating the lung segmenter that covidxray.imaging.lungs ships and runs.

pairs: hand masks with their images and patients; train: the U-Net fit; evaluate: Dice and HD95.
"""
