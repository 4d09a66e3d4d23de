//! Build contexts (placeholder: being written).
