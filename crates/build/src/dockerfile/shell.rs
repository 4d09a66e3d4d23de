//! Docker's word expansion (placeholder: being written).
