"""Your own labeller: audit a YOLO-format dataset, train a detector (ultralytics YOLO11 and
RT-DETR through ultralytics' trainer, or LensDB's light DETR), evaluate it with LensDB's own
metric code, predict with it. Front doors: `audit`, `train_detector`, `evaluate_checkpoint`,
`predict_images` (each in its own module; imported lazily so `import lensdb` stays light)."""
