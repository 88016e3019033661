//! tilt.dev/v1alpha1 object types.
