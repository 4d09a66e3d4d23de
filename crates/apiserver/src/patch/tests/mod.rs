//! Tests of the patch module.

mod apply;
mod depth;
mod json_patch;
mod merge_patch;
mod strategic;
