// tinyds/python/arrays.h — numpy <-> tinyds arrays for the Python bindings (`import tinyds`).
//
// Two directions, two rules:
//   in:  numpy arrays are taken as C-contiguous arrays of the C++ element type (py::array::forcecast converts a
//        float64 or int64 array once); `checked` verifies the element count against what the C++ function reads,
//        naming the argument, so a wrong shape is a Python exception, never an out-of-bounds read.
//   out: `view` wraps memory tinyds owns for the object's lifetime (parameters, gradients, router biases) without
//        copying; the numpy array keeps the Python owner alive through its `base`. `copy` is for memory that
//        tinyds re-carves (the activations are regrown when B*T grows, so a view could outlive its storage).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "tinyds/core/error.h"

namespace tinyds::python {

namespace py = pybind11;

template <typename T>
using In = py::array_t<T, py::array::c_style | py::array::forcecast>;

// The data pointer of `a`, after checking it holds `numel` elements (the C++ side reads exactly that many).
template <typename T>
const T* checked(const In<T>& a, std::size_t numel, const char* name) {
  if (static_cast<std::size_t>(a.size()) != numel) {
    std::string shape;
    for (py::ssize_t i = 0; i < a.ndim(); i++) shape += (i ? ", " : "") + std::to_string(a.shape(i));
    throw_error(name, ": expected ", numel, " elements, got ", a.size(), " (shape (", shape, "))");
  }
  return a.data();
}

// A new numpy array holding a copy of n = prod(shape) elements from p.
template <typename T>
py::array_t<T> copy(const T* p, const std::vector<py::ssize_t>& shape) {
  py::array_t<T> out(shape);
  std::size_t n = 1;
  for (py::ssize_t s : shape) n *= static_cast<std::size_t>(s);
  std::copy(p, p + n, out.mutable_data());
  return out;
}

// A zero-copy numpy view of memory owned by `owner` (a Python object that keeps the memory alive).
template <typename T>
py::array_t<T> view(T* p, const std::vector<py::ssize_t>& shape, py::handle owner) {
  return py::array_t<T>(shape, p, owner);
}

}  // namespace tinyds::python
