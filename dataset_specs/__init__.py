"""dataset_specs"""
