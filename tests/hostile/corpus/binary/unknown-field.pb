
cifar10_pruningN "
^conv1/š™™™™™é?iÍÌÌÌÌÌì?pNx ˜