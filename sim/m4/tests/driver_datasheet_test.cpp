// Placeholder: the driver-vs-datasheet tests follow.
#include <gtest/gtest.h>
