"""Where the model looked: Grad-CAM heat maps and their overlays on the radiograph."""
