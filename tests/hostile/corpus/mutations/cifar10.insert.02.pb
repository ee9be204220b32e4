
cifar10_pruningNÿ "
^conv1/š™™™™™éÿ?€€€€€€€€€€iÍÌÌÌÌÌì?pNx 