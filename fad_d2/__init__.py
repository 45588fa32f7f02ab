"""fad_d2: FAD / RepShare neural architecture search for Detectron2 heads."""
