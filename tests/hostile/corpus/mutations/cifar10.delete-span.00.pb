
cifar10_pruningN "
^c™™™™™é?iÍÌÌÌÌÌì?pNx 