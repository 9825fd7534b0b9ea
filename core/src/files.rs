//! The data dir and secret files: owner-only, written atomically, never
//! through a symbolic link planted where one of them should be. The code is
//! [`honeybee_process::private_files`], shared with the agent.

pub use honeybee_process::private_files::{
    create_private_dir, read_secret, restrict_to_owner, write_private as write_secret,
};
