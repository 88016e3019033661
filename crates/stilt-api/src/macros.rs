/// Declares an API struct: camelCase JSON, strict decoding (unknown fields are errors), every
/// field optional on input and omitted from output when empty (Go's `omitempty`), except fields
/// marked `@required`, which are always written.
macro_rules! api_struct {
    ($(#[$attr:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $crate::macros::api_struct!(@munch [$(#[$attr])*] $name [] $($body)*);
    };
    (@munch $attrs:tt $name:ident [$($done:tt)*]
        $(#[$fattr:meta])* @required pub $field:ident : $ty:ty $(, $($rest:tt)*)?) => {
        $crate::macros::api_struct!(@munch $attrs $name [$($done)* $(#[$fattr])* pub $field: $ty,] $($($rest)*)?);
    };
    (@munch $attrs:tt $name:ident [$($done:tt)*]
        $(#[$fattr:meta])* pub $field:ident : $ty:ty $(, $($rest:tt)*)?) => {
        $crate::macros::api_struct!(@munch $attrs $name [$($done)*
            $(#[$fattr])* #[serde(skip_serializing_if = "crate::is_default")] pub $field: $ty,] $($($rest)*)?);
    };
    (@munch [$($attr:tt)*] $name:ident [$($done:tt)*]) => {
        $($attr)*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields, default)]
        pub struct $name {
            $($done)*
        }
    };
}

pub(crate) use api_struct;

/// Declares a top-level kind: `apiVersion`, `kind`, `metadata`, `spec`, `status`.
macro_rules! api_kind {
    ($(#[$attr:meta])* $name:ident, $spec:ident, $status:ident) => {
        $(#[$attr])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            #[serde(default)]
            pub api_version: String,
            #[serde(default)]
            pub kind: String,
            #[serde(default)]
            pub metadata: $crate::meta::ObjectMeta,
            #[serde(default)]
            pub spec: $spec,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub status: Option<$status>,
        }

        impl $name {
            pub const KIND: &'static str = stringify!($name);

            /// A new object with `apiVersion`/`kind` filled and the given name and spec.
            pub fn new(name: impl Into<String>, spec: $spec) -> Self {
                Self {
                    api_version: $crate::API_VERSION.to_string(),
                    kind: Self::KIND.to_string(),
                    metadata: $crate::meta::ObjectMeta::named(name),
                    spec,
                    status: None,
                }
            }
        }
    };
}

pub(crate) use api_kind;
