/** Absolute paths of the files this package ships. */
export declare const binary: string;
export declare const kernel: string;
export declare const init: string;
export declare const agent: string;
export declare const baseRootfs: string;
export declare const mke2fs: string;
export declare const mksquashfs: string;
