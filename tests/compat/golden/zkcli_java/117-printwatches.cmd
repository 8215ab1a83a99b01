args: printwatches off
