"""Fashion-MNIST clothing images through torchvision, from a local root."""

import ganzoo
from ganzoo_plugins.mnist import MNIST


class FashionMNIST(MNIST):
    name = "fashion_mnist"
    description = "Fashion-MNIST (torchvision, local root; 28x28 gray, resized/replicated as the recipe says)"
    torchvision_class = "FashionMNIST"
    label_name = "class"
    class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@ganzoo.hookimpl
def register_datasets(register):
    register(FashionMNIST)
