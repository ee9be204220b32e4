
cifar10_pruningN "
^cænv1/š™™™™™é?iÍÌÌÌÌÌì?pNx 