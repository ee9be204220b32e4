
cifar10_pr═█onv1/ ≥≥≥≥≥И?iмлллллЛ?p░Nx═█